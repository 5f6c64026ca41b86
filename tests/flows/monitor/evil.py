"""Log, output and ask with text that would run as script if a page did not escape it."""

EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def handler(system, this, inputs):
    this.log(EVIL)
    this.set_output(html=EVIL)
    this.message(subject=EVIL, message=EVIL, body={"why": {"element": "string", "label": EVIL, "default": EVIL}})
    return this.success(EVIL)
