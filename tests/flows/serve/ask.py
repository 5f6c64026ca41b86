"""Ask a person for a number, then end with it."""

FORM = {
    "type": "object",
    "properties": {"count": {"element": "number", "type": "integer", "label": "How many?", "order": 1}},
    "required": ["count"],
}


def handler(system, this, inputs):
    answer = this.message(subject="How many?", message="Pick a number.", body=FORM)
    this.set_output(count=answer["count"])
    return this.success(f"got {answer['count']}")
