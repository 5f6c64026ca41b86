"""Asking a person: a message with a form, and the execution continues with the answer.

The flow sends a message whose ``body`` is a form (approve: yes/no, comment) and waits
for the answer, holding no process while it waits, for seconds or for weeks. Run it,
then answer from another terminal:

    engine run examples/seed/approval.py -i amount=250     # waits for the answer
    engine messages ls                                      # in another terminal: the message id
    engine messages respond MESSAGE_ID -f approve=true -f comment="looks fine"

``engine run`` then prints the execution's output. An answer that does not fit the form
(``-f approve=maybe``) is refused and the execution keeps waiting. ``-f approve=false``
ends it with an error.
"""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    amount = inputs.get('amount', 100)
    answer = this.message(
        subject='Approval needed',
        message=f'Please approve the payment of {amount} EUR.',
        body={
            'type': 'object',
            'properties': {
                'approve': {'element': 'boolean', 'label': 'Approve the payment?', 'order': 1},
                'comment': {'element': 'string', 'label': 'Comment', 'order': 2, 'default': ''},
            },
            'required': ['approve'],
        },
    )
    this.set_output(approved=answer['approve'], comment=answer['comment'], amount=amount)
    if not answer['approve']:
        return this.error(f'payment of {amount} EUR rejected: {answer["comment"]}')
    return this.success(f'payment of {amount} EUR approved')
