/* placeholder: vec API */
#pragma once
#include "common.h"
