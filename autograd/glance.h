// One include for users of the engine: tensors, the differentiable functions, autograd utilities.
#pragma once
#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "autograd/graph.h"
#include "autograd/node.h"
#include "tensor/npy.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tensor/tensor.h"
