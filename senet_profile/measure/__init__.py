"""The measuring room: one resolver, every measurement and explanation, and the results they return."""

# - ``resolve``: any model argument (catalog, ``timm:``, ``torchvision:``, ``module:function``,
#   ``file.py:function``), spec or module, built on the device and dtype asked for;
# - ``core``: static counts, memory and latency of one model (``profile``) or two (``compare``, and
#   ``time_pair`` for the bench and sweeps), the module tree and the op table, as records and frames;
# - ``explaining``: ``explain`` (where the extra time goes) and ``explain_memory`` (the extra peak memory),
#   returning results that turn themselves into records, frames and reports.
# Everything here takes one ``senet_profile.setting.Setting``; the command line, the bench and sweeps
# reach it through ``senet_profile.api``.
