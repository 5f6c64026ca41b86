"""Start ``inputs["n"]`` children one after another, waiting for each; record the
thread that ran each activation past a wait, and the children's threads."""
import threading


def thread_id():
    return threading.get_ident()


def handler(system, this, inputs):
    parent, children = [this.step(thread_id)], []
    for _ in range(inputs["n"]):
        child = this.flow("handoff_child", parent=this.id)
        children.append(child.get("output_value")["thread"])
        parent.append(this.step(thread_id))
    this.set_output(parent=parent, children=children)
