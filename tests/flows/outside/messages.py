"""The ways of this.message, chosen by ``inputs['mode']``."""

import flow_api


def handler(system, this, inputs):
    mode = inputs["mode"]
    if mode == "info":
        message_id = this.message(subject="FYI", message="Nothing to answer.")
        this.set_output(message_id=message_id)
    elif mode == "request":
        answer = this.message(subject="Name?", message="Who are you?", request="Your name")
        this.set_output(answer=answer)
    elif mode == "ack":
        answer = this.message(subject="Read this", message="Acknowledge, please.", wait=True)
        this.set_output(answer=answer)
    elif mode == "nowait_form":
        message_id = this.message(subject="Survey", message="Later.", request="Anything", wait=False)
        this.set_output(message_id=message_id)
    elif mode == "timeout":
        try:
            this.message(subject="Hurry", message="Answer quickly.", request="Quick", timeout=inputs["timeout"])
        except flow_api.MessageResponseTimeoutError as exc:
            this.set_output(timed_out=str(exc))
            return this.success("nobody answered")
        return this.error("an answer came")
    return this.success(mode)
