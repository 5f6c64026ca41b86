"""Catches each refused duration, then sleeps for real: the replay after the timer must
meet every refusal in the log, in order."""


def handler(system, this, inputs):
    refused = []
    child = this.flow("ok", run=False, wait=False)
    calls = (
        lambda: this.sleep(float("nan")),
        lambda: this.message("late", request="answer?", timeout=float("inf")),
        lambda: child.wait(timeout=1e12),
    )
    for call in calls:
        try:
            call()
        except Exception as exc:
            refused.append(f"{type(exc).__name__}: {exc}")
    this.sleep(0.01)
    this.set_output(refused=refused)
    return this.success("refusals caught")
