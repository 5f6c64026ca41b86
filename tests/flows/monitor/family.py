"""Start a child and wait for it, then ask a person for a number and end with it."""

FORM = {
    "type": "object",
    "properties": {"count": {"element": "number", "type": "integer", "label": "How many?", "order": 1}},
    "required": ["count"],
}


def handler(system, this, inputs):
    child = this.flow("echo", greeting="hello")
    this.log(f"child {child.id} ended")
    answer = this.message(subject="How many?", message="Pick a number.", body=FORM)
    this.set_output(count=answer["count"])
    return this.success(f"got {answer['count']}")
