import flow_api

def handler(system, this, inputs):
    this.log("hello", inputs)
    n = this.step(lambda: 41) + 1
    this.set_output(n=n)
    this.sleep(0.2)
    child = this.flow('child', x=n)
    this.log("child says", child.get('output_value'))
    this.set_output('child', child.get('output_value'))
    return this.success('all done')
