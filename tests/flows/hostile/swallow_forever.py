"""A handler that swallows every error forever: `while True: try: this.sleep(1) except: pass`."""
import flow_api
def handler(system, this, inputs):
    while True:
        try:
            this.sleep(1)
        except:
            pass
