"""Pictures, with no dependency: PNG files and image grids (:mod:`.png`), a bitmap font
(:mod:`.font`), plots (:mod:`.plots`) and the pictures of a trained model
(:mod:`.model_pictures`).
"""
