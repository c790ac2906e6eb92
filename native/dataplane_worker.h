// One worker of the tunnel data plane: a thread that owns a TUN fd, a UDP socket on the NAT-T port and a raw
// ESP socket, and moves packets between them without JavaScript on the per-packet path.
//
//   TUN --read x64--> selector lookup (outbound SAs) --seal--> sendmmsg to the SA's peer
//   UDP --recvmmsg x64--> 0xff: keepalive, dropped | 0x00000000: IKE, handed to JS | SPI: open, check the
//                         inner addresses against the SA's selectors, write to TUN
//
// Threads: JavaScript (the control plane, dataplane.cc) adds and removes SAs in the worker's table and reads
// its counters; the worker owns the packet path. The table and the counters are guarded by the worker's
// mutex, which the worker takes once per batch (not per packet) and never across a blocking system call.
// The SAs themselves are not locked: an attached EspSa belongs to its worker (see esp_sa.h).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dataplane.h"
#include "raw_esp.h"
#include "sa_table.h"

namespace ike {
namespace dataplane {

class Worker {
 public:
  // Runs on the worker thread for each IKE datagram (marker removed); false when JavaScript's queue is full.
  using IkeSink = std::function<bool(const uint8_t* data, size_t len, const sockaddr_storage& from)>;

  // tunFd: non-blocking, the caller's (never closed here). udpFd: bound, this worker's from now on.
  Worker(unsigned index, int tunFd, bool vnet, int udpFd, bool gso, IkeSink onIke);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() { Stop(); }

  // The raw socket for plain ESP, to open before Start().
  rawesp::RawEsp& Raw() { return raw_; }
  int UdpFd() const { return udpFd_; }

  bool Start(std::string* err);
  // Stops the thread and closes the sockets; idempotent.
  void Stop();

  // Guards Sas() and Stats(); taken by the JavaScript thread for every change and read.
  std::mutex& Mu() { return mu_; }
  SaTable& Sas() { return sas_; }
  Counters& Stats() { return c_; }

 private:
  void Run();
  void FromTun(uint8_t* buf);
  void Count(uint64_t Counters::*field);
  void SealAndSend(uint8_t* buf, const size_t* lens, unsigned count);
  unsigned Send(iovec* iov, sockaddr_storage* to, socklen_t* toLen, unsigned n);
  void FromUdp(uint8_t* buf);
  void FromRaw(uint8_t* buf);
  void WriteOut(std::unique_lock<std::mutex>& lock);
  unsigned WritePlain();
  unsigned WriteJoined(unsigned* joined);
  void Datagram(uint8_t* d, size_t len, const sockaddr_storage& from);
  void Esp(uint8_t* d, size_t len, const sockaddr_storage& from, bool udp);
  void Transport(SaEntry* e, uint8_t* d, size_t len, uint8_t* inner, size_t innerLen, uint8_t nh,
                 const sockaddr_storage& from, bool udp);

  const unsigned index_;
  const int tunFd_;
  const bool vnet_;  // the TUN fd has IFF_VNET_HDR (openTun with offload): virtio_net_hdr on every packet
  int udpFd_ = -1, wakeFd_ = -1;
  bool gso_ = false;  // worker: UDP_SEGMENT usable
  IkeSink onIke_;
  rawesp::RawEsp raw_;  // plain ESP (IP protocol 50), when CAP_NET_RAW allows it

  std::mutex mu_;
  SaTable sas_;
  Counters c_;

  std::vector<iovec> out_;  // worker: inner packets of one receive batch, to write to TUN
  std::vector<uint8_t> stage_ = std::vector<uint8_t>(kMaxPacket);  // worker: one TSO super-packet
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace dataplane
}  // namespace ike
