"""What a cycle computes from its bars: indicators (pandas-ta), ICT/SMC structure, and the
anchored window they are computed on. Pure and causal: row i depends on bars <= i."""
