"""The example plugin passes Recograph's conformance suite."""

from recograph_p3alpha import P3alpha

from engines.testing import AlgorithmConformance


class TestP3alpha(AlgorithmConformance):
    algorithm = P3alpha
