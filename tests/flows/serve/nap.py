"""Wait on a durable timer (an hour unless told), holding nothing: pause, resume and cancel act on it."""


def handler(system, this, inputs):
    this.sleep(inputs.get("seconds", 3600))
    return this.success("woke up")
