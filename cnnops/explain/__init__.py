"""What the convnet learned: a layer's activations for an image, the input patterns that
its channels respond to most, and Grad-CAM heatmaps of where the evidence for a class
lies, for any model (cnnops or torch.nn layers), its layers named as in
model.named_modules(). The command `python -m cnnops.explain` draws them from a checkpoint
of `python -m cnnops.train`.

    layers        finding layers by name, catching their outputs with forward hooks
    activations   activations(), save_activation_grid()
    patterns      filter_patterns(), save_pattern_grid()
    gradcam       grad_cam(), save_gradcam_overlay()
    localisation  localisation_rate(): how often Grad-CAM's peak is on the object
    images        loading photographs (files, sklearn:NAME) as a model's input
    figures       the PNG drawing
    cli           the command
"""
from .activations import activations, save_activation_grid
from .gradcam import grad_cam, save_gradcam_overlay
from .layers import feature_maps, find_module, last_feature_map, map_layers
from .localisation import localisation_rate, peak_hits
from .patterns import FilterPatterns, filter_patterns, save_pattern_grid

__all__ = ["activations", "save_activation_grid", "filter_patterns", "save_pattern_grid",
           "FilterPatterns", "grad_cam", "save_gradcam_overlay", "localisation_rate",
           "peak_hits", "find_module", "map_layers", "feature_maps", "last_feature_map"]
