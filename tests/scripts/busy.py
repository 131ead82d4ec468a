"""Hold 60 MB and keep a core busy until killed."""

held = bytearray(60 * 2**20)
while True:
    pass
