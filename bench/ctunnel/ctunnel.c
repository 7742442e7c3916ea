/* The yardstick for bench/run.py: the simplest fast userspace UDP tunnel in C, one process per end.
 * It does what a userspace L2TP data plane cannot avoid (TUN read/write, a 12-byte header on each
 * packet, recvmmsg/sendmmsg bursts of 64, 4 MiB socket buffers) and nothing else: no session lookup,
 * no PPP, no checks.
 *
 *   ctunnel TUN-NAME LOCAL-IP LOCAL-PORT PEER-IP PEER-PORT
 *
 * The TUN device is created here (IFF_TUN | IFF_NO_PI); addresses and MTU are set by the caller. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define HDR 12
#define BUFSZ 2048

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s TUN LOCAL-IP LOCAL-PORT PEER-IP PEER-PORT\n", argv[0]);
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    int tun = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
    struct ifreq ifr = {0};
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
    if (tun < 0 || ioctl(tun, TUNSETIFF, &ifr) < 0) { perror("tun"); return 1; }
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[5]))};
    inet_pton(AF_INET, argv[2], &local.sin_addr);
    inet_pton(AF_INET, argv[4], &peer.sin_addr);
    int bufsz = 4 << 20;  /* the same socket buffers fastl2tp asks for */
    setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof bufsz);
    setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof bufsz);
    if (bind(sock, (struct sockaddr *)&local, sizeof local) < 0) { perror("bind"); return 1; }
    if (connect(sock, (struct sockaddr *)&peer, sizeof peer) < 0) { perror("connect"); return 1; }

    static unsigned char bufs[BATCH][BUFSZ];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    struct pollfd pfd[2] = {{.fd = tun, .events = POLLIN}, {.fd = sock, .events = POLLIN}};
    while (!stop) {
        if (poll(pfd, 2, 500) < 0) { if (errno == EINTR) continue; perror("poll"); return 1; }
        if (pfd[0].revents & POLLIN) {  /* TUN -> UDP: read a burst, header in front, one sendmmsg */
            int n = 0;
            for (; n < BATCH; n++) {
                ssize_t r = read(tun, bufs[n] + HDR, BUFSZ - HDR);
                if (r <= 0) break;
                memset(bufs[n], 0, HDR);
                bufs[n][1] = 0x02;
                iov[n] = (struct iovec){bufs[n], (size_t)r + HDR};
                msgs[n] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[n], .msg_iovlen = 1}};
            }
            for (int sent = 0; sent < n;) {
                int r = sendmmsg(sock, msgs + sent, n - sent, 0);
                if (r <= 0) break;
                sent += r;
            }
        }
        if (pfd[1].revents & POLLIN) {  /* UDP -> TUN: one recvmmsg burst, a write per packet */
            for (int i = 0; i < BATCH; i++) {
                iov[i] = (struct iovec){bufs[i], BUFSZ};
                msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
            }
            int n = recvmmsg(sock, msgs, BATCH, MSG_DONTWAIT, NULL);
            for (int i = 0; i < n; i++)
                if (msgs[i].msg_len > HDR && write(tun, bufs[i] + HDR, msgs[i].msg_len - HDR) < 0 && errno != EAGAIN)
                    perror("write");
        }
    }
    return 0;
}
