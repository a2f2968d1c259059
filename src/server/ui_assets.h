/*
 * ui_assets.h: the files of the local web page (src/server/ui/), compiled into the binary
 * by cmake/embed.cmake, and served by routes_ui.c at /ui/.
 */
#ifndef NOOK_SERVER_UI_ASSETS_H
#define NOOK_SERVER_UI_ASSETS_H

#include <stddef.h>

typedef struct srv_asset {
    const char *name;           /* file name under src/server/ui/ ("index.html")        */
    const unsigned char *data;  /* its bytes (followed by a NUL not counted in len)     */
    size_t len;
} srv_asset;

extern const srv_asset srv_ui_assets[];
extern const size_t srv_ui_n_assets;

#endif /* NOOK_SERVER_UI_ASSETS_H */
