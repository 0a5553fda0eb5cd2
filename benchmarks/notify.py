from benchmarks.common import Section
def run(quick: bool) -> Section:
    raise NotImplementedError
