"""Text that is not valid Unicode (a lone surrogate, as bytes decoded with
``surrogateescape`` give) in the way ``what`` names."""

BAD = b"caf\xe9".decode("utf-8", "surrogateescape")


def handler(system, this, inputs):
    what = inputs["what"]
    if what == "output":
        this.set_output(name=BAD)
    elif what == "step":
        this.step(lambda: BAD)
    elif what == "log":
        this.log(f"read {BAD}")
    elif what == "raise":
        raise ValueError(f"no file {BAD}")
    elif what == "subject":
        this.message(BAD, "text", wait=False)
    return this.success("done")
