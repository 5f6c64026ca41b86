"""Asks the engine to pause this execution outside any step (once), then sleeps: the
pause takes effect at the suspension's commit."""
import pathlib

import flow_api


def ask_for_pause(db, execution_id):
    from engine import control
    from engine.api import Engine

    engine = Engine(db)
    try:
        control.pause(engine, execution_id)
    finally:
        engine.close()


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    flag = pathlib.Path(inputs['flag'])
    if not flag.exists():
        flag.write_text('asked')
        ask_for_pause(inputs['db'], this.get('id'))
    this.sleep(3600)
    return this.success('woke up')
