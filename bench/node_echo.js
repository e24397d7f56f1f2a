// Node.js `net` echo server for bench/run.py: `node bench/node_echo.js PORT` prints
// "ready PORT" once it listens on 127.0.0.1 and echoes every chunk back (socket.write).
"use strict";
const net = require("net");
const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on("data", (chunk) => {
    // Back-pressure as a user would write it: pause reading while the write buffer is full.
    if (!socket.write(chunk)) {
      socket.pause();
      socket.once("drain", () => socket.resume());
    }
  });
  socket.on("error", () => socket.destroy());
});
server.maxConnections = 100000;
server.listen(Number(process.argv[2] || 0), "127.0.0.1", 4096, () => {
  console.log(`ready ${server.address().port}`);
});
