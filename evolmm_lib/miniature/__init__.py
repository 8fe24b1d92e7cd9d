"""The CPU miniature reproduction: a seeded visual world (``world``), a warm start of both roles
(``warmstart``), labelled Solver metrics (``metrics``), the continuous / discrete / none study on the
kit's trainer (``study``, ``plots``) and its command line (``cli``)."""
