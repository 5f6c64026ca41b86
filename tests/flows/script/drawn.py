"""Drawn by tests/test_script_graph.py (never run): every kind of call, a helper, a step."""

import flow_api


def fetch(url):
    return url


def notify(run, who):
    run.message(subject=f"done for {who}", message="ok")


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    report = this.flow('make-report', wait=False)
    data = this.step(fetch, inputs['url'])
    crm = this.connect('crm', path='/customers')
    this.connect(connector_type='REST', url=data)
    this.wait_for(report, crm, return_when='ALL_ENDED')
    this.sleep(5)
    later = this.flow('archive', run=False)
    this.dependency(later)
    handle = system.flow('cleanup')
    this.log(handle)
    answer = this.message(subject='Approve?', body={'type': 'object'})
    notify(this, answer)
    return this.success('all done')
