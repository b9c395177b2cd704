/* eio.c — placeholder until Engine.IO lands: no sessions. */
#include "api.h"

int
eio_init(void)
{
	return 0;
}

enum MHD_Result
eio_handle(Request *r)
{
	return reply_error(r, 404, "PGRST125", "Socket.IO is not built yet", NULL, NULL);
}

void
eio_shutdown(void)
{
}

int
eio_session_count(void)
{
	return 0;
}

void
sio_publish(const char *event, const char *json_data, int64_t owner)
{
	(void) event;
	(void) json_data;
	(void) owner;
}
