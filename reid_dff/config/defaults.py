"""Every configuration key and its default, in one place.

Configs in ``configs/`` only override these; an unknown key is an error. Each section names the
package that reads it.
"""

from .config import CfgNode as CN

_C = CN()

_C.SEED = 0
# Where a run writes its resolved config, logs, checkpoints and results.json.
_C.OUTPUT_DIR = "output/default"

# ---------------------------------------------------------------------------- model (reid_dff.modeling)
_C.MODEL = CN()
# "cpu", "cuda", "cuda:N" or "auto" (cuda when available).
_C.MODEL.DEVICE = "auto"
# Intra-op CPU threads of the main process; 0: automatic, the usable cores (shared by the ranks of a DDP run
# on this machine) minus DATALOADER.NUM_WORKERS, at least 1, unless OMP_NUM_THREADS is set. Loader workers
# run one thread each. See docs/training.md.
_C.MODEL.NUM_THREADS = 0
# "reid" (embedding + BNNeck + ID classifier), "classification" (Office-Home style closed-set head) or
# "imagenet" (stage-1 pre-training: the classification model, top-1/top-5 on the source's val split).
_C.MODEL.TASK = "reid"
# Convert the model and its training inputs to the channels_last memory format (faster convolutions
# under AMP on tensor-core GPUs); results are the same up to float rounding.
_C.MODEL.CHANNELS_LAST = False
# Backbone registry name: resnet18/34/50/101, ffc_resnet18/50, dff_resnet18/50 ...
_C.MODEL.BACKBONE = "dff_resnet50"
_C.MODEL.LAST_STRIDE = 1
# Local file with torchvision ImageNet ResNet weights (never downloaded). Empty: random init.
_C.MODEL.PRETRAIN_PATH = ""
# A reid-dff checkpoint to load the whole model from (evaluation, fine-tuning, feature extraction).
_C.MODEL.WEIGHTS = ""

_C.MODEL.DFF = CN()
# Fraction of channels in the global (spectral) branch; 0.5 for DFF-R50.
_C.MODEL.DFF.RATIO = 0.5
# The paper's ablation variants, one code path:
#   none          SBase / FFC: no mask (use a plain resnet backbone for Base)
#   ori_local     spatial attention mask in the original domain on the local branch
#   ori_global    spatial attention mask in the original domain on the global branch
#   task_channel  learned per-channel frequency mask shared by all inputs (Task.(C))
#   task_spatial  learned per-frequency-position mask shared by all inputs (Task.(S))
#   ins_channel   instance-adaptive channel attention on the frequency representation (Ins.(C))
#   ins_spatial   instance-adaptive spatial frequency mask (Ins.(S), DFF, the default)
_C.MODEL.DFF.FILTER = "ins_spatial"
# Kernel of the conv that turns [mean, max] over channels into the spatial mask.
_C.MODEL.DFF.MASK_KERNEL = 7
# Reduction of the SE-style channel attention (ins_channel).
_C.MODEL.DFF.SE_REDUCTION = 16
# The DFF mask's open choices (our interpretation; docs/models.md). What the mask conv reads: "re_im"
# (mean/max over the stacked real and imaginary channels) or "log_magnitude" (mean/max of log1p|F|).
_C.MODEL.DFF.MASK_INPUT = "re_im"
# The layout the mask conv sees: "rfft" (rfft2 layout, zero padding) or "centered" (fftshift along H,
# circular padding along H, zero padding along W//2+1, mask shifted back).
_C.MODEL.DFF.MASK_LAYOUT = "rfft"
# Start of the mask conv's weights: "kaiming" (default: the masks differ by image from the start and stay
# instance-adaptive; docs/results.md, "The DFF mask's open choices"), "zeros" (a uniform 0.5 mask, the
# paper's literal reading, which stays near 0.5 for every image) or "normal" (std 1e-2).
_C.MODEL.DFF.MASK_INIT = "kaiming"
# Weight decay of the mask generators' weights; negative: SOLVER.WEIGHT_DECAY like every other weight.
_C.MODEL.DFF.MASK_WEIGHT_DECAY = -1.0

_C.MODEL.HEAD = CN()
# "avg" or "gem".
_C.MODEL.HEAD.POOLING = "avg"
_C.MODEL.HEAD.GEM_P = 3.0
# "bnneck" (BatchNorm1d with frozen bias after pooling) or "none".
_C.MODEL.HEAD.NECK = "bnneck"
# 0: the number of training identities / classes, set from the data.
_C.MODEL.HEAD.NUM_CLASSES = 0

_C.MODEL.LOSSES = CN()
_C.MODEL.LOSSES.NAMES = ["cross_entropy", "triplet"]
_C.MODEL.LOSSES.CE = CN()
_C.MODEL.LOSSES.CE.EPSILON = 0.1
_C.MODEL.LOSSES.CE.WEIGHT = 1.0
_C.MODEL.LOSSES.TRIPLET = CN()
# 0 switches to the soft margin log(1 + exp(d_ap - d_an)).
_C.MODEL.LOSSES.TRIPLET.MARGIN = 0.3
_C.MODEL.LOSSES.TRIPLET.WEIGHT = 1.0
# "euclidean" or "cosine".
_C.MODEL.LOSSES.TRIPLET.METRIC = "euclidean"

# ---------------------------------------------------------------------------- input (reid_dff.data.transforms)
_C.INPUT = CN()
_C.INPUT.SIZE_TRAIN = [256, 128]
_C.INPUT.SIZE_TEST = [256, 128]
_C.INPUT.PIXEL_MEAN = [0.485, 0.456, 0.406]
_C.INPUT.PIXEL_STD = [0.229, 0.224, 0.225]
_C.INPUT.FLIP_PROB = 0.5
# "resize": every image resized to SIZE_TRAIN / SIZE_TEST (ReID, Office-Home). "imagenet": training takes a
# RandomResizedCrop of SIZE_TRAIN (scale 0.08-1, ratio 3/4-4/3); evaluation resizes the shorter side to
# SIZE_TEST / 0.875 (256 for 224) and takes the centre SIZE_TEST crop; PADDING must be 0.
_C.INPUT.STYLE = "resize"
# Pad then random-crop back to SIZE_TRAIN; 0 disables.
_C.INPUT.PADDING = 10
_C.INPUT.RANDOM_ERASING = CN()
# Off for domain generalization (MetaBIN, M3L).
_C.INPUT.RANDOM_ERASING.ENABLED = False
_C.INPUT.RANDOM_ERASING.PROB = 0.5
_C.INPUT.COLOR_JITTER = CN()
_C.INPUT.COLOR_JITTER.ENABLED = False
_C.INPUT.COLOR_JITTER.PROB = 0.5
_C.INPUT.COLOR_JITTER.BRIGHTNESS = 0.2
_C.INPUT.COLOR_JITTER.CONTRAST = 0.15
_C.INPUT.COLOR_JITTER.SATURATION = 0.1
_C.INPUT.COLOR_JITTER.HUE = 0.1

# ---------------------------------------------------------------------------- data (reid_dff.data)
_C.DATASETS = CN()
# Data root holding one folder per dataset in its official layout (see datasets/README.md).
_C.DATASETS.ROOT = "datasets"
# Dataset specs: a registry name, optionally "name:arg" (e.g. "synthetic:3" = synthetic domain 3).
_C.DATASETS.SOURCES = ["market1501"]
_C.DATASETS.TARGETS = ["market1501"]
# Protocol 3 / protocol 1: train on all images of each source (train + query + gallery, junk dropped).
_C.DATASETS.COMBINE_ALL = False
# Split ids evaluated on the small targets (viper, prid, grid, ilids); results are mean/std over them.
_C.DATASETS.SPLIT_IDS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
_C.DATASETS.CUHK03 = CN()
# "detected" or "labeled".
_C.DATASETS.CUHK03.BOXES = "detected"
# Classic 20-split protocol instead of the new 767/700 protocol.
_C.DATASETS.CUHK03.CLASSIC_SPLIT = False
# Which of the 20 classic splits (0-19) when CLASSIC_SPLIT is True.
_C.DATASETS.CUHK03.CLASSIC_SPLIT_ID = 0
# Where images extracted from cuhk-03.mat are cached; empty: ~/.cache/reid_dff/cuhk03.
_C.DATASETS.CUHK03.CACHE_DIR = ""
# Read <root>/cuhk03/images_<boxes>/ when torchreid has finished extracting there (its four splits_*.json
# exist) instead of extracting cuhk-03.mat into CACHE_DIR; False always extracts.
_C.DATASETS.CUHK03.TORCHREID_IMAGES = True
_C.DATASETS.SYNTHETIC = CN()
# Generated into DATASETS.ROOT/synthetic when absent (see reid_dff.data.synthetic).
_C.DATASETS.SYNTHETIC.SEED = 0
_C.DATASETS.SYNTHETIC.NUM_DOMAINS = 4
_C.DATASETS.SYNTHETIC.IDS_TRAIN = 100
_C.DATASETS.SYNTHETIC.IDS_TEST = 50
_C.DATASETS.SYNTHETIC.HEIGHT = 128
_C.DATASETS.SYNTHETIC.WIDTH = 64
# Cameras per domain (2-6; Market-1501 names allow 6); each identity visits a random subset of >= 2.
_C.DATASETS.SYNTHETIC.CAMERAS = 4
# Images per identity per visited camera (>= 2, so every query keeps a cross-camera gallery match).
_C.DATASETS.SYNTHETIC.IMAGES_PER_CAMERA = 5
# The many-class classification set of stage 1 at CPU scale (shape x texture, docs/synthetic.md), read as
# "class_folder:synthetic_classes": generated into DATASETS.ROOT/synthetic_classes when ENABLED and absent.
_C.DATASETS.SYNTHETIC_CLASSES = CN()
_C.DATASETS.SYNTHETIC_CLASSES.ENABLED = False
_C.DATASETS.SYNTHETIC_CLASSES.SEED = 0
# 2-100 classes (10 shapes x 10 textures); each block of ten holds every shape and every texture once.
_C.DATASETS.SYNTHETIC_CLASSES.NUM_CLASSES = 100
_C.DATASETS.SYNTHETIC_CLASSES.TRAIN_PER_CLASS = 60
_C.DATASETS.SYNTHETIC_CLASSES.VAL_PER_CLASS = 10
# Square images of this side (pixels).
_C.DATASETS.SYNTHETIC_CLASSES.SIZE = 32
# Office-Home closed-set DG (MODEL.TASK classification): sources/targets are "officehome:<Domain>" specs.
_C.DATASETS.OFFICEHOME = CN()
# TEST.SELECTION source_val: identities held out of each ReID source (drawn from SEED), removed from
# training; per identity, one image per camera is a query and the rest gallery.
_C.DATASETS.SOURCE_VAL = CN()
_C.DATASETS.SOURCE_VAL.NUM_IDS = 10
# Fraction of each class of each source domain held out for model selection (best.pth); targets stay unseen.
_C.DATASETS.OFFICEHOME.VAL_FRACTION = 0.1
# Seed of that split: fixed, so every run and backbone selects on the same images.
_C.DATASETS.OFFICEHOME.SPLIT_SEED = 0
_C.DATASETS.OFFICEHOME.SYNTHETIC = CN()
# Generate the procedural Office-Home-shaped set into DATASETS.ROOT when absent (CPU demo, tests).
_C.DATASETS.OFFICEHOME.SYNTHETIC.ENABLED = False
_C.DATASETS.OFFICEHOME.SYNTHETIC.SEED = 0
_C.DATASETS.OFFICEHOME.SYNTHETIC.IMAGES_PER_CLASS = 30
_C.DATASETS.OFFICEHOME.SYNTHETIC.SIZE = 64

_C.DATALOADER = CN()
# "domain_balanced", "random_identity" or "random" (plain shuffling, for classification).
_C.DATALOADER.SAMPLER = "domain_balanced"
# K images per identity in a batch; P = SOLVER.IMS_PER_BATCH // K.
_C.DATALOADER.NUM_INSTANCES = 4
_C.DATALOADER.NUM_WORKERS = 4
# "error": a corrupt or unreadable image stops with its path; "skip": it is dropped and counted.
_C.DATALOADER.ON_BAD_IMAGE = "error"
# "opencv" (cv2.imdecode) or "torchvision" (torchvision.io, libjpeg-turbo; the fastest per worker in
# bench/classification_loader.py, used by the ImageNet recipe). Decoders may differ by a level in a few pixels.
_C.DATALOADER.DECODER = "opencv"
# Before training, check every training and evaluation image: "header" (PIL reads each header; a JPEG must
# end in its end-of-image marker), "full" (decode each image as training does) or "none".
_C.DATALOADER.CHECK_IMAGES = "header"

# ---------------------------------------------------------------------------- solver (reid_dff.engine)
_C.SOLVER = CN()
# "Adam" or "SGD".
_C.SOLVER.OPTIMIZER = "Adam"
_C.SOLVER.BASE_LR = 3.5e-4
# Linear LR scaling: when > 0, the learning rate used is BASE_LR * IMS_PER_BATCH / REFERENCE_BATCH
# (IMS_PER_BATCH is the global batch over all ranks); 0: BASE_LR as is.
_C.SOLVER.REFERENCE_BATCH = 0
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = False
_C.SOLVER.WEIGHT_DECAY = 5e-4
# Exempt BatchNorm/LayerNorm weights and all biases from weight decay.
_C.SOLVER.NO_DECAY_NORM_BIAS = False
# 24 identities x 4: the domain-balanced sampler needs an equal share per source, and 24 divides among
# 1, 2, 3 and 4 sources (16 x 4 = 64 does not fit the 3-source protocols; MetaBIN uses 96).
_C.SOLVER.IMS_PER_BATCH = 96
_C.SOLVER.MAX_EPOCHS = 60
# Iterations per epoch with an infinite sampler; 0: len(train set) // IMS_PER_BATCH.
_C.SOLVER.ITERS_PER_EPOCH = 0
# "multistep" or "cosine"; epochs, applied per iteration.
_C.SOLVER.SCHEDULER = "multistep"
_C.SOLVER.STEPS = [30, 50]
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.WARMUP_EPOCHS = 10
_C.SOLVER.WARMUP_FACTOR = 0.01
# Cosine schedule floor, as a fraction of BASE_LR.
_C.SOLVER.MIN_LR_FACTOR = 0.0
# Max global gradient norm; 0 disables clipping.
_C.SOLVER.CLIP_GRAD_NORM = 0.0
# Mixed precision; only ever used on CUDA.
_C.SOLVER.AMP = True
# AMP's autocast dtype: "auto" (bf16 where the GPU supports it, else fp16), "bf16" or "fp16". fp16 runs
# with a gradient scaler; bf16 needs none.
_C.SOLVER.AMP_DTYPE = "auto"
_C.SOLVER.SYNC_BN = False
_C.SOLVER.CHECKPOINT_PERIOD = 1
_C.SOLVER.LOG_PERIOD = 20

# ---------------------------------------------------------------------------- test (reid_dff.evaluation)
_C.TEST = CN()
_C.TEST.IMS_PER_BATCH = 128
# Evaluate every N epochs during training (and always at the end); 0: only at the end.
_C.TEST.EVAL_PERIOD = 10
# Which evaluation picks best.pth (ReID; the targets are evaluated for the log but never pick a model):
# "last": the last epoch (what DG papers report); "source_val": the best mean mAP on identities held out
# of each source (DATASETS.SOURCE_VAL), which then do not train.
_C.TEST.SELECTION = "last"
# Mask diagnostics (reid_dff.evaluation.mask_stats) at each evaluation, for models with mask modules:
# OUTPUT_DIR/mask_stats.json and TensorBoard "mask/..." scalars, over at most MASK_STATS_MAX_IMAGES
# training images (evenly spaced, so every source domain is represented) with the test transforms.
_C.TEST.MASK_STATS = False
_C.TEST.MASK_STATS_MAX_IMAGES = 512
# "cosine" (on L2-normalized features) or "euclidean".
_C.TEST.METRIC = "cosine"
_C.TEST.MAX_RANK = 50
# Average the features of the image and its horizontal flip.
_C.TEST.FLIP_FEATS = False
# Upper bound of the evaluator's working memory (distance blocks), in MiB.
_C.TEST.MAX_MEMORY_MB = 512
_C.TEST.RERANK = CN()
_C.TEST.RERANK.ENABLED = False
_C.TEST.RERANK.K1 = 20
_C.TEST.RERANK.K2 = 6
_C.TEST.RERANK.LAMBDA = 0.3
