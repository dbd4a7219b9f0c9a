"""Whole-model inference tools: fold BN, recalibrate BN statistics, MC dropout."""
from kreg.inference.fold_batchnorm import FoldDecision
from kreg.inference.fold_batchnorm import fold_batchnorm
from kreg.inference.mc_predict import mc_predict
from kreg.inference.recalibrate_batchnorm import recalibrate_batchnorm
