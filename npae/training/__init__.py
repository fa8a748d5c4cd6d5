"""Training: the loop (:mod:`.loop`) with its settings and state (:mod:`.state`), checkpoints
(:mod:`.checkpoints`), signals and progress around it, and the step that takes one batch's
update on a team of threads (:mod:`.step`, :mod:`.team`).
"""
