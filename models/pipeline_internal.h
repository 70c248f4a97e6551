/* models/pipeline_internal.h — shared between the pipeline's source files
 * (pipeline.c, pipeline_params.c, pipeline_run.c); nothing else includes it.
 * Ownership and thread-safety as models/pipeline.h. */
#ifndef DIFFUSIOND_MODELS_PIPELINE_INTERNAL_H
#define DIFFUSIOND_MODELS_PIPELINE_INTERNAL_H

#include "models/pipeline.h"

/* A copy of `base` that shares its tables with the config changed for scheduler `s`
 * (never schedule_free it). */
struct schedule sd_schedule_variant(const struct schedule *base, enum sd_scheduler s);

#endif
