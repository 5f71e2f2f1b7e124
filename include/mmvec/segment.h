/* placeholder: segment API */
#pragma once
#include "common.h"
