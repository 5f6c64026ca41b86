"""A few recorded steps and a log line: several commits per execution, for the tests of the
database's files (backups taken and files replaced while a worker runs)."""


def double(n):
    return 2 * n


def handler(system, this, inputs):
    total = 0
    for i in range(inputs.get("steps", 4)):
        total += this.step(double, i)
    this.log("total", total)
    return this.success(f"total {total}")
