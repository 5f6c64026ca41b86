"""Creates a child PAUSED (run=False), logs, naps, then waits for the child (which
starts it): a fork cut after the log owns a child still PAUSED."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    later = this.flow('leaf', run=False)
    this.log('created paused')
    this.sleep(inputs.get('nap', 3600))
    this.wait_for(later)
    return this.success('the paused child ran')
