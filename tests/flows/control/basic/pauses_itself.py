"""Asks the engine to pause this very execution from inside a step (so it is RUNNING)."""
import pathlib

import flow_api


def bump(path):
    p = pathlib.Path(path)
    p.write_text(str(int(p.read_text()) + 1 if p.exists() else 1))


def ask_for_pause(db, execution_id, counter):
    from engine import control
    from engine.api import Engine

    bump(counter)
    engine = Engine(db)
    try:
        return control.pause(engine, execution_id).note
    finally:
        engine.close()


def after_pause(counter):
    bump(counter)
    return 'ran'


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.step(ask_for_pause, inputs['db'], this.get('id'), inputs['first'])
    this.step(after_pause, inputs['second'])
    return this.success('done')
