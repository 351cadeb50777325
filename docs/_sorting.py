"""The order of the gallery: from the first swap of PCA to scaling out."""

ORDER = [
    "quickstart.py",
    "plot_pipeline_gridsearch.py",
    "plot_compare_sparsity.py",
    "plot_denoising.py",
    "plot_patch_filters.py",
    "plot_scaling_out.py",
]


class ExampleOrder:
    """sphinx-gallery's ``within_subsection_order``: the examples in ``ORDER`` first."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        return (ORDER.index(filename), "") if filename in ORDER else (len(ORDER), filename)

    def __repr__(self):
        return f"<{type(self).__name__}>"
