import threading
from concurrent.futures import ThreadPoolExecutor

import flow_api


def handler(system, this, inputs):
    results = []
    worker = threading.Thread(target=lambda: results.append(1))  # <- found
    worker.start()
    worker.join()
    with ThreadPoolExecutor(max_workers=4) as pool:  # <- found
        sizes = list(pool.map(len, inputs["items"]))
    this.set_output(results=results, sizes=sizes)
    return this.success("parallel")
