"""Analytics writes: the rollup jobs (``rollups``) and the MRR of one service (``mrr``)."""
