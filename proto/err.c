/* SPDX-License-Identifier: MIT */
#include "proto/err.h"

#include <string.h>

const char *tf_strerror(int err)
{
    switch (err) {
    case TF_OK:
        return "success";
#define TF_ERR_MSG(name, value, msg)                                                               \
    case TF_E_##name:                                                                              \
        return msg;
        TF_ERR_LIST(TF_ERR_MSG)
#undef TF_ERR_MSG
    default:
        break;
    }
    if (err < 0 && err > -10000)
        return strerror(-err);
    return "unknown error";
}

const char *tf_err_name(int err)
{
    switch (err) {
    case TF_OK:
        return "OK";
#define TF_ERR_NAME(name, value, msg)                                                              \
    case TF_E_##name:                                                                              \
        return "E_" #name;
        TF_ERR_LIST(TF_ERR_NAME)
#undef TF_ERR_NAME
    default:
        break;
    }
    return "ERRNO";
}
