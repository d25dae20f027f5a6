"""The ACE origin client: fetches every sample a cache gap needs, and nothing else.

`OriginClient.fetch_samples` is what the engine calls to fill cache gaps. The
simulator that tests, benchmarks and the demo run against lives beside this
package, in `acechart.simulator`, and nothing here imports it.
"""

from acechart.origin.client import OriginClient, Progress, ProgressCallback, Samples

__all__ = ["OriginClient", "Progress", "ProgressCallback", "Samples"]
