"""Flow 3 of the seed's passing-values example: records a message with the value it got.

It is started by passing_values.py; the message is listed by ``engine messages ls --all``:

    engine run examples/seed/passing_values.py
"""
import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    # getting message_value from the 'message_value' field of the input_value
    message_value = inputs['message_value']

    # creating message
    this.message(
        subject='Message',
        message=f' The value is: {message_value}',
    )

    return this.success('all done')
