from concurrent.futures import ThreadPoolExecutor

import flow_api


def sizes_of(items):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(len, items))


def handler(system, this, inputs):
    children = [this.flow("measure", item=item, wait=False) for item in inputs["items"]]
    this.wait_for(*children)
    sizes = this.step(sizes_of, inputs["items"])
    this.set_output(sizes=sizes)
    return this.success("parallel")
