"""Sends messages with broken forms. With ``catch`` each refusal is caught and the
handler sleeps, so a replay must meet the refusals in the log."""

FORMS = [
    {"type": "object", "properties": {"a": {"element": "string"}}, "required": 5},
    {"a": {"element": "boolean", "required": 5}},
    {"a": {"element": "string", "label": 7}},
    {"a": {"element": "string", "order": "first"}},
    {"a": {"element": "integer", "options": [1, "two"]}},
    {"a": {"element": "string", "options": "abc"}},
]


def handler(system, this, inputs):
    if not inputs.get("catch"):
        this.message("approve", body=FORMS[0])
    refused = []
    for n, form in enumerate(FORMS):
        try:
            this.message(f"form {n}", body=form)
        except Exception as exc:
            refused.append(f"{type(exc).__name__}: {exc}")
    this.sleep(0.01)
    this.set_output(refused=refused)
    return this.success("refusals caught")
