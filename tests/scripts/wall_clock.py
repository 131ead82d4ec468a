"""Print the wall clock (time.time()) exactly, for commands that record when they ran."""

import time

print(repr(time.time()))
