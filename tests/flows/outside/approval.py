"""Ask a person for an approval through a form, then act on the answer."""

import flow_api

FORM = {
    "type": "object",
    "properties": {
        "approve": {"element": "boolean", "type": "boolean", "label": "Approve the deployment?", "order": 1},
        "comment": {"element": "string", "type": "string", "label": "Comment", "order": 2, "default": ""},
        "replicas": {"element": "number", "type": "integer", "label": "Replicas", "order": 3, "default": 1},
    },
    "required": ["approve"],
}


def handler(system, this, inputs):
    this.log("asking for approval")
    answer = this.message(
        subject=inputs.get("subject", "Deploy?"), message="Please **approve** the deployment.", body=FORM
    )
    this.set_output(answer=answer)
    if not answer["approve"]:
        return this.error(f"rejected: {answer['comment']}")
    return this.success(f"approved with {answer['replicas']} replicas")
