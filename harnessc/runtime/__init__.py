"""The harness runtime: memory banks, data loading and the execution of compiled harnesses.

Nothing here is imported by the compiler front end; heavy dependencies (numpy, engines) live below.
"""
