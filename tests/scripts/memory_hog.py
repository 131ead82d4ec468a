"""Hold 200 MB for 20 seconds: more than a task's memory limit in the tests."""

import time

held = b"x" * (200 * 2**20)
time.sleep(20)
