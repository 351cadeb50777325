"""Draw docs/_static/quickstart_thumbnail.png: the first 8 images of load_digits.

The quick start prints a table and draws no figure; its gallery thumbnail shows its
data. Run from the repository root.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

plt.switch_backend("Agg")
fig, axes = plt.subplots(2, 4, figsize=(4, 2.2))
for ax, image in zip(axes.ravel(), load_digits().images[:8]):
    ax.imshow(image, cmap="gray_r")
    ax.set_axis_off()
fig.savefig("docs/_static/quickstart_thumbnail.png", dpi=80)
