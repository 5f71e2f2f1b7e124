/* placeholder: typed API */
#pragma once
#include "common.h"
