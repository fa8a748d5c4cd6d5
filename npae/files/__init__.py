"""Files: written atomically (:mod:`.atomic`), archives read without pickle and with bounded
memory (:mod:`.archive`), and the record of a model that a file carries (:mod:`.model_records`).
"""
