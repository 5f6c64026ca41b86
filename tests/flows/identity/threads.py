"""A handler whose threads call this.step (issue 10, item 2): refused, and the
execution fails even where a thread swallows the error."""
import threading

import flow_api  # noqa: F401


def square(i):
    return i * i


def handler(system, this, inputs):
    results = {}
    errors = []

    def work(first):
        for i in range(first, first + 10):
            try:
                results[i] = this.step(square, i)
            except Exception as exc:  # swallowed: the execution must fail all the same
                errors.append(str(exc))

    threads = [threading.Thread(target=work, args=(n * 10,), name=f"worker-{n}") for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    this.log(f"{len(errors)} refused")
    return this.success(f"{len(results)} results")
