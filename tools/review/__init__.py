"""``make review``: an offline review of the synthesized stacks (diagram, posture, cost,
and a diff against a git ref), from ``cdktf.out`` alone."""
