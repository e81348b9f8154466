"""Looking inside a model: the course's reports, pictures and conversions.

- ``analysis``: the per-layer table (kernel, stride, padding, shapes, parameters,
  receptive fields, FLOPs, activations), ``model_flops``, ``parameter_counts`` and
  ``memory_report``;
- ``im2col``: convolution as one matrix multiply;
- ``fully_convolutional``: ``fc_to_conv``, a dense head turned into convolutions;
- ``report``: what ``cnnkeras inspect`` prints;
- ``viz``: pictures as PNG files (curves, confusion matrices, filters, feature maps);
- ``filter_demo``: hand-made line filters over two photos, a convolution by hand;
- ``graph``: a model's layer graph through public Keras, which the others read.

Nothing is imported with the package: each module loads what it needs (Keras,
matplotlib) when it is imported.
"""
