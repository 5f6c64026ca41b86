"""Waits for one child (``leaf``), starts another without waiting (``sleeper``), logs,
then waits for the second: a fork cut after the log owns a child that had not ended."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    first = this.flow('leaf')
    later = this.flow('sleeper', seconds=inputs.get('seconds', 3600), wait=False)
    this.log('spawned')
    this.wait_for(later)
    this.set_output(note=inputs.get('note'), first=first.get('status'), later=later.get('status'))
    return this.success('both children ended')
